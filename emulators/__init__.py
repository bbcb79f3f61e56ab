"""Accelerator profiles shipped with lowprec (TOML data; see README.md and lowprec.profiles)."""
