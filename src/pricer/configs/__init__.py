"""Files shipped with pricer: run configs (NAME.yaml, read by pricer.train.config) and accelerate
launch configs (accelerate/, see pricer.configs.accelerate)."""
