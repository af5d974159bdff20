"""keras-zoo: registered Keras models, one shared trainer, SavedModels served the TF Serving way.

Importing `zoo` has no side effects: nothing is downloaded, trained or even imported from
TensorFlow until a submodule that needs it is imported.
"""

__version__ = "0.1.0"
