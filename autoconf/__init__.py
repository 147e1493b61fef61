"""mail-autoconf: one YAML file per mail provider, every mail client configured."""

__version__ = "0.1.0"
