"""Distributed training of a tiny classifier on scikit-learn's digits with MultiWorkerMirroredStrategy.

Every replica runs this same script; TF_CONFIG (set by TFJobOperator, or by the
Kubeflow training operator in a TFJob) tells each one its role. The chief (or worker 0)
reports accuracy with ``record()`` and one metrics line per epoch.

Parameters arrive as JSON in ``MLPLATFORM_PARAMETERS``: ``epochs``, ``batch_size``,
``learning_rate``, ``hidden_units``.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _record(name, value):
    """record() from airflow_mlplatform.runtime when installed, else the same wire format."""
    try:
        from airflow_mlplatform.runtime import record
    except ImportError:
        print("::mlplatform::record " + json.dumps({"name": name, "value": value}), flush=True)
    else:
        record(name, value)


def main() -> int:
    params = json.loads(os.environ.get("MLPLATFORM_PARAMETERS") or "{}")
    epochs = int(params.get("epochs", 5))
    batch_size = int(params.get("batch_size", 32))
    learning_rate = float(params.get("learning_rate", 0.5))
    hidden = int(params.get("hidden_units", 32))

    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {"type": "worker", "index": 0})
    has_chief = "chief" in tf_config.get("cluster", {})
    is_leader = task["type"] == "chief" or (not has_chief and task["type"] == "worker" and task["index"] == 0)

    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    n_replicas = strategy.num_replicas_in_sync

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int64")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

    global_batch = batch_size * n_replicas
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=0, reshuffle_each_iteration=True)
        .repeat()
        .batch(global_batch, drop_remainder=True)
        .with_options(options)
    )
    steps_per_epoch = max(1, len(x_train) // global_batch)

    # A two-layer perceptron with plain tf.Variables and a custom loop: the same code
    # runs under any tf.distribute strategy, independent of the Keras version installed.
    with strategy.scope():
        init = tf.random.stateless_normal
        w1 = tf.Variable(init([64, hidden], seed=(1, 2), stddev=0.1), aggregation=tf.VariableAggregation.SUM)
        b1 = tf.Variable(tf.zeros([hidden]), aggregation=tf.VariableAggregation.SUM)
        w2 = tf.Variable(init([hidden, 10], seed=(3, 4), stddev=0.1), aggregation=tf.VariableAggregation.SUM)
        b2 = tf.Variable(tf.zeros([10]), aggregation=tf.VariableAggregation.SUM)
    weights = [w1, b1, w2, b2]

    def logits_of(features):
        return tf.matmul(tf.nn.relu(tf.matmul(features, w1) + b1), w2) + b2

    def replica_step(features, labels):
        with tf.GradientTape() as tape:
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=logits_of(features)
            )
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, weights)
        for var, grad in zip(weights, grads, strict=True):
            # SUM aggregation adds every replica's update: the gradient of the global mean loss.
            var.assign_sub(learning_rate * grad)
        return loss

    @tf.function
    def train_step(batch):
        features, labels = batch
        losses = strategy.run(replica_step, args=(features, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    batches = iter(strategy.experimental_distribute_dataset(train_ds))
    for epoch in range(epochs):
        total = 0.0
        for step in range(steps_per_epoch):
            if epoch == 0 and step == 0:
                # wall-clock time of the first training step (read by benchmarks/bench_tf_local.py)
                print(f"::tfjob::first-step {time.time():.6f}", flush=True)
            total += float(train_step(next(batches)))
        if is_leader:
            print(json.dumps({"epoch": epoch + 1, "loss": round(total / steps_per_epoch, 6)}), flush=True)

    accuracy = float(np.mean(np.argmax(logits_of(x_test).numpy(), axis=1) == y_test))
    if is_leader:
        _record("accuracy", round(accuracy, 6))
        _record("replicas", n_replicas)
        _record("epochs", epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
