bpf_tracepoint "sched:sched_process_exec" {|e| emit {file: $e.filename, pid: $e.args.pid, old: $e.old_pid} }
