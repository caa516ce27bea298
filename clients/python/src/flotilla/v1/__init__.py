"""Generated from proto/flotilla/v1 by scripts/gen-clients: do not edit."""
