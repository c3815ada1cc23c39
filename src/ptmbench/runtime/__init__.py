"""Runtime: the wrapper every workflow job runs in, and the GPU device slots it claims."""
