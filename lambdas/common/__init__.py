"""Code shared by the processor and alert functions: contract rules and metric names."""
