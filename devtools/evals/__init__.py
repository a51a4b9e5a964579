"""`laneway route-eval` and `laneway eval`: routing accuracy and conversation scripts played through the real pipeline."""
