"""The model engine every stage shares: the model registry, fetching and loading (`models`), prompt rendering
(`render`), the fast decoder (`decode`), batched sampling (`sampling`), log-probabilities and perplexity
(`logprob`), and length-sorted batching (`batching`). Nothing here knows about stages or run folders."""
