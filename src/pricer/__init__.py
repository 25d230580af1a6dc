"""pricer: turn a pretrained causal language model into a product-price estimator.

The pipeline, one folder a stage:
    data/      curate product listings into prompts        (pricer data)
    models/    load, inspect and download base models      (pricer model ...)
    train/     LoRA / QLoRA fine-tuning                     (pricer train)
    predict/   read a price out of a model                  (pricer predict)
    evaluate/  score any predictor the reference's way      (pricer eval, baselines, leaderboard)
"""

__version__ = "0.1.0"
