//! Windlass operator library.
