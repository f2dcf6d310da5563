"""The failure drills, one module each; registry.py lists them."""
