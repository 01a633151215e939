"""Human-written text corpora that install offline (austen.py: Jane Austen's six novels from a Debian package),
the real text the language-model collapse study starts from."""
