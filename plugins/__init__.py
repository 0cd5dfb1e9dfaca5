"""Built-in plugins of research, loaded through the same entry points a third party uses."""
