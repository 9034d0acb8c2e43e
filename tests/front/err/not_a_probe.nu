ls /tmp
