// nghttp2's allocations on the data path, through per-thread free lists of a few size
// classes. A session allocates and frees stream objects, frame items and header copies by
// the thousand per second, and glibc's malloc and free were a fifth of the HTTP/2 path's
// CPU. Each session lives on its worker's thread, so the lists take no lock; a block freed
// on another thread just joins that thread's list. Blocks past the largest class, and
// blocks past each list's cap, go to malloc and free. The worker trims the lists every
// second, so a burst's blocks do not stay.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>

namespace veer::proxy {

nghttp2_mem* h2_memory();

// Frees the calling thread's blocks that no allocation needed since the last call (the
// fewest that were free at any moment): a steady load keeps its blocks, a burst's leave
// within two calls. Returns how many it freed.
std::size_t h2_memory_trim();

// The calling thread's free blocks, for tests.
std::size_t h2_memory_free_blocks();

}  // namespace veer::proxy
