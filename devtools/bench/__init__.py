"""`laneway bench`: the controller, end-to-end, durability, NLU and voice benchmarks."""
