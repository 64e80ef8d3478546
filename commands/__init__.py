"""What starter.py runs: each command's work, kept out of the argument parsing."""
