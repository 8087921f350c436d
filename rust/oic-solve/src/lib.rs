//! The dependency solver of the packages stage.
