"""idgateway: one identify API for messenger and CRM vendors."""

__version__ = "0.1.0"
