//! eddy-pipeline
