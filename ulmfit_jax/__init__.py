"""ulmfit_jax."""
