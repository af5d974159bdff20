"""Training: one trainer for every registered model, and what is built on it.

    config.py              TrainConfig: every choice a run makes
    trainer.py             train(): load, build, compile, fit, evaluate, plot, export
    evaluation.py          a version's metrics on its own split; batched signature calls
    plots.py               learning curves
    tune.py                Keras Tuner searches
    retrain.py             train a candidate, publish it only if it is no worse
    distribution.py        tf.distribute strategies (mirrored, multi-worker)
    keras_multi_worker.py  repairs to Keras's multi-worker paths
"""
