//! The NEXMark benchmark for Eddy.
