//! The package cache of the packages stage.
