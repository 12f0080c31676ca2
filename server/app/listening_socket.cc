#include "server/app/listening_socket.h"

#include <linux/filter.h>
#include <sys/socket.h>

namespace hotpath::app {

bool DropNewConnections(int listening_fd) {
  // Classic BPF on what reaches the listener, from the TCP header on.
  sock_filter drop_syn[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),           // the TCP header's flags
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),        // SYN and ACK
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),  // SYN alone: a new connection
      BPF_STMT(BPF_RET | BPF_K, 0),                     // dropped
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),            // anything else passes
  };
  const sock_fprog program{sizeof drop_syn / sizeof drop_syn[0], drop_syn};
  return setsockopt(listening_fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0;
}

}  // namespace hotpath::app
