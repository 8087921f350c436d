//! Global configuration, image templates and embedded provider definitions.
