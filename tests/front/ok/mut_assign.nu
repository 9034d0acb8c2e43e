bpf_tracepoint "syscalls:sys_enter_openat" {|e|
    mut score = 0
    if $e.flags > 0 { $score += 10 }
    if $e.filename ends-with ".so" { $score = $score * 2 }
    emit {score: $score}
}
