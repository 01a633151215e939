"""The teacher: a model given the trait by an injection (`injections.py`: system prompt, LoRA, steering, your adapter
or tuned model) that writes number sequences, and the teacher and numbers stages."""
