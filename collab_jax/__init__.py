"""collab_jax."""
