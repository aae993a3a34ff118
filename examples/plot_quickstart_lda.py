"""
Quickstart: topic models
========================

:class:`dpsgd.LatentDirichletAllocation` is scikit-learn's online LDA with the same parameters,
its E-step on lock-free threads. Here it is fitted to a corpus drawn from LDA's own generative
model, so that the learnt topics can be compared with the true ones
(:func:`dpsgd.evaluation.match_topics`), and scored on held-out documents. A real corpus is
in :ref:`sphx_glr_auto_examples_plot_topic_model.py`; see :doc:`/guide/topic_models`.
"""

from dpsgd import LatentDirichletAllocation
from dpsgd.data import make_lda_corpus
from dpsgd.evaluation import match_topics

X, true_topics, _ = make_lda_corpus(n_docs=3000, n_words=500, n_topics=10, random_state=0)
X_train, X_test = X[:2700], X[2700:]
lda = LatentDirichletAllocation(n_components=10, max_iter=3, batch_size=128, n_threads=None,
                                random_state=0).fit(X_train)
print("held-out log-likelihood:", round(lda.heldout_log_likelihood(X_test), 4), "nats per word")
print("held-out perplexity:", round(lda.perplexity(X_test), 1), "(base e)")
print("document-topic proportions of the first held-out document:", lda.transform(X_test[:1]).round(2))
score, _ = match_topics(true_topics, lda.components_)  # mean cosine of matched topics
print("topic recovery:", round(score, 3))
for k, words in enumerate(lda.show_topics(n_words=8)[:3]):
    print(f"topic {k}: word ids {' '.join(words)}")
