"""Figure scripts: render publication figures from saved result directories."""
