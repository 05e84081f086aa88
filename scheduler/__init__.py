"""cyclogram: calendar feeds and templated mail for networks of schools."""

__version__ = "0.1.0"
