"""Real human text shipped with the project: corpus loading and tokenisation."""
