# count every openat per process
bpf_tracepoint "syscalls:sys_enter_openat" {|e|
    # the key is the command name
    count --by $e.comm
}
