bpf_uprobe "/bin/bash" "readlin" {|ctx| count }
