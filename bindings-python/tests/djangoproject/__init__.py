"""A small Django project that uses hubbub.django, for the test suite."""
