bpf_tracepoint "sched:sched_switch" {|e| count --by {prev: $e.prev_comm, next: $e.next_comm} }
