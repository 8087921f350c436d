//! Repository signing keys and OpenPGP verification of repository metadata.
