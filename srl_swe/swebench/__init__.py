"""SWE-bench tasks: typed instances, task images, grading through the real harness."""
