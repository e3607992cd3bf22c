"""The quiet start of TensorFlow (apps/common/quiet.py): start-up noise goes,
everything else stays, and after start-up stderr is the real stderr.

Each case runs in a fresh process, since TensorFlow starts once per process.
"""

import os
import subprocess
import sys
import textwrap

from kerasrnn.apps.common.quiet import STARTUP_NOISE

ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                        "KERASRNN_VERBOSE")}
START = "from kerasrnn.apps.common.quiet import start_tensorflow\nstart_tensorflow()\n"


def run_script(body, **kwargs):
    return subprocess.run([sys.executable, "-c", START + textwrap.dedent(body)],
                          capture_output=True, text=True, env=ENV, timeout=300, **kwargs)


# The start-up lines of TensorFlow 2.21 on a CPU machine, as it prints them.
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796191988.931472    2259 port.cc:153] oneDNN custom operations are on."
    " You may see slightly different numerical results",
    "I0000 00:00:1796191988.931960    2259 cudart_stub.cc:31] Could not find cuda drivers on"
    " your machine, GPU will not be used.",
    "I0000 00:00:1796191989.058589    2259 cpu_feature_guard.cc:227] This TensorFlow binary is"
    " optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow"
    " with the appropriate compiler flags.",
    "E0000 00:00:1796191992.800669    2259 cuda_platform.cc:52] failed call to cuInit:"
    " INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796193483.848590   13388 util.cc:131] oneDNN supports DT_INT64 only on"
    " platforms with AVX-512. Falling back to the default Eigen-based implementation if present.",
]
KEPT = [
    "F0000 00:00:1796191992.800669    2259 cuda_platform.cc:52] failed call to cuInit",
    "F0000 00:00:1796191992.800669    2259 op_kernel.cc:12] Check failed: x == y",
    "E0000 00:00:1796191992.800669    2259 saved_model.cc:33] could not read the model",
    "W0000 00:00:1796191992.800669    2259 port.cc:153] something else entirely",
    "Traceback (most recent call last):",
    "model: saved_models/textgen/8 (the newest export here)",
]


def test_only_the_known_start_up_lines_are_noise():
    assert all(STARTUP_NOISE.match(line.encode()) for line in NOISE)
    assert not any(STARTUP_NOISE.match(line.encode()) for line in KEPT)


def test_the_start_up_window_drops_the_noise_and_keeps_the_rest():
    lines = NOISE + KEPT
    script = textwrap.dedent(f"""
        import os
        from kerasrnn.apps.common.quiet import _StartupFilter
        window = _StartupFilter()
        for line in {lines!r}:
            os.write(2, line.encode() + b"\\n")
        window.close()
        os.write(2, b"after the window\\n")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=ENV, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == KEPT + ["after the window"]
    # That TensorFlow's own start-up writes nothing: the stderr of the
    # processes below holds their own lines alone.


def test_a_crash_after_start_up_prints_its_trace():
    run = run_script("""
        import faulthandler
        faulthandler.enable()
        faulthandler._sigsegv()
    """)
    assert run.returncode != 0
    assert "Fatal Python error: Segmentation fault" in run.stderr


def test_a_fatal_tensorflow_line_shows():
    # TensorFlow's Abort op logs at FATAL ("F… Abort_op intentional failure")
    # and aborts the process, as a failed "Check" does.
    run = run_script("""
        import tensorflow as tf
        graph = tf.Graph()
        with graph.as_default():
            abort = tf.raw_ops.Abort(error_msg="kerasrnn-test-abort")
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(abort)
    """)
    assert run.returncode != 0
    (fatal,) = [line for line in run.stderr.splitlines() if "kerasrnn-test-abort" in line]
    assert fatal.startswith("F") and "Abort_op intentional failure" in fatal


def test_a_tensorflow_error_shows():
    run = run_script("""
        import tensorflow as tf
        tf.debugging.check_numerics(tf.constant(float("nan")), "kerasrnn-test-nan")
    """)
    assert run.returncode != 0
    assert "InvalidArgumentError" in run.stderr and "kerasrnn-test-nan" in run.stderr


def test_the_last_line_before_os_exit_arrives():
    run = run_script("""
        import os, sys
        sys.stderr.write("last words\\n")
        sys.stderr.flush()
        os._exit(3)
    """)
    assert run.returncode == 3
    assert run.stderr == "last words\n"


def test_a_closed_stderr_pipe_ends_the_command():
    # As in `kerasrnn ... 2>&1 >log | head -1`: the reader leaves after one line
    # and the command's later writes to stderr must fail, not block.
    script = START + "import sys\nfor i in range(100000):\n    print('line', i, file=sys.stderr)\n"
    shell = f"{sys.executable} -c \"$SCRIPT\" 2>&1 >/dev/null | head -1"
    run = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=120,
                         env={**ENV, "SCRIPT": script})
    assert run.stdout == "line 0\n"


def test_after_start_up_stderr_is_the_real_one(tmp_path):
    # A child inherits the real stderr, not a pipe that the command must
    # drain at exit; a terminal would stay a terminal (isatty) the same way.
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        run = subprocess.run(
            [sys.executable, "-c", START + textwrap.dedent(f"""
                import os, subprocess, sys
                same = os.path.samestat(os.fstat(2), os.stat({str(log)!r}))
                subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('child\\\\n')"])
                print(same)
            """)],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=ENV, timeout=300)
    assert run.returncode == 0
    assert run.stdout == "True\n"
    assert log.read_text() == "child\n"


def test_a_closed_stderr_runs_the_command_and_fd_2_stays_taken(tmp_path):
    # `kerasrnn ... 2>&-`: Python starts with sys.stderr None and fd 2 free;
    # the command must run, and no file it opens may take number 2.
    script = START + textwrap.dedent(f"""
        import os
        with open({str(tmp_path / "opened")!r}, "w") as f:
            print(f.fileno() != 2, os.path.samestat(os.fstat(2), os.stat(os.devnull)))
    """)
    run = subprocess.run(["sh", "-c", f"{sys.executable} -c \"$SCRIPT\" 2>&-"],
                         capture_output=True, text=True, timeout=300,
                         env={**ENV, "SCRIPT": script})
    assert run.returncode == 0 and run.stdout == "True True\n", (run.stdout, run.stderr)
