"""Example spiders; every module here is scanned for Spider subclasses."""
