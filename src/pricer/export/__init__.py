"""Take a fine-tuned pricer out of its training folder: a merged safetensors model (merge.py),
GGUF files made by llama.cpp's own converter and quantizer (llamacpp.py), an Ollama
Modelfile (modelfile.py), and the model card (card.py)."""
