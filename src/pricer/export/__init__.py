"""Take a fine-tuned pricer out of its training folder: a merged safetensors model (merge.py),
a GGUF file for llama.cpp / Ollama (gguf.py, modelfile.py), and the model card (card.py)."""
