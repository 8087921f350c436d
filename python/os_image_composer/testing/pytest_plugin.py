"""The pytest plugin of os-image-composer: fixtures for loopback repositories and images."""
