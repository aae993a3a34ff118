"""
Topics of a real corpus
=======================

A topic model of the AP newswire (2,246 news articles of 1988, as David Blei distributed them)
fitted by :class:`dpsgd.LatentDirichletAllocation` on every core, with its topics, its
held-out log-likelihood and the share of each topic in the corpus.

**Where the corpus comes from.** dpsgd ships no text corpus, and scikit-learn's
``fetch_20newsgroups`` downloads one. This example reads AP in the UCI bag-of-words format
(``docword.ap.txt`` and ``vocab.ap.txt``) from the folder named by ``DPSGD_AP_DIR`` or from
``../shared/data/ap_associated_press`` beside the source tree, where the project keeps its
corpora. Where neither is there (a fresh clone, the documentation's CI build) it falls back to
a corpus drawn from LDA's own generative model, whose words are ids, and says so below: that
corpus has topics to find, but no words to read.
"""

import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dpsgd import LatentDirichletAllocation
from dpsgd.data import load_uci_bow, make_lda_corpus

# %%
# The corpus
# ----------
# The last 10% of the documents are held out to score the model.

try:  # run as a script, or by the documentation build
    here = Path(__file__).resolve().parent
except NameError:  # pasted into a notebook or a console
    here = Path.cwd()
folder = Path(os.environ.get("DPSGD_AP_DIR", here.parent.parent / "shared" / "data" / "ap_associated_press"))
if (folder / "docword.ap.txt").exists():
    X, vocabulary = load_uci_bow(folder / "docword.ap.txt", folder / "vocab.ap.txt")
    corpus = "AP newswire"
else:
    X, _, _ = make_lda_corpus(n_docs=2000, n_words=1000, n_topics=10, random_state=0)
    vocabulary = [f"w{j}" for j in range(X.shape[1])]
    corpus = "a generated corpus (AP is not here)"
n_train = X.shape[0] * 9 // 10
X_train, X_test = X[:n_train], X[n_train:]
print(f"{corpus}: {X.shape[0]} documents, {X.shape[1]} words, {int(X.sum())} tokens")

# %%
# The model
# ---------
# Ten topics, two online passes over the training documents, minibatches of 128 documents
# shared by the threads (``parallel="batch"``: with one thread, scikit-learn's update
# sequence).

start = time.perf_counter()
lda = LatentDirichletAllocation(n_components=10, max_iter=2, batch_size=128, parallel="batch",
                                n_threads=None, random_state=0).fit(X_train)
print(f"fitted in {time.perf_counter() - start:.1f} s on {lda.n_threads_} thread(s)")
print(f"held-out log-likelihood: {lda.heldout_log_likelihood(X_test):.3f} nats per word")

# %%
# Its topics
# ----------
# The ten most probable words of each topic, and how much of the corpus each topic explains
# (the mean of the documents' topic proportions).

share = lda.transform(X).mean(axis=0)
for k in np.argsort(-share):
    words = lda.show_topics(vocabulary, n_words=10)[k]
    print(f"topic {k} ({share[k]:5.1%}): {' '.join(words)}")

fig, ax = plt.subplots(figsize=(7, 3.5))
order = np.argsort(share)
labels = [" ".join(lda.show_topics(vocabulary, n_words=3)[k]) for k in order]
ax.barh(labels, share[order])
ax.set_xlabel("share of the corpus")
ax.set_title(f"Ten topics of {corpus}")
fig.tight_layout()
plt.show()
