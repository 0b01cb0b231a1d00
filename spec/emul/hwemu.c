/* hwemu: a preload library that emulates Linux device interfaces, so the
 * brine.hw bindings are tested through their real system calls without
 * hardware. Loaded with LD_PRELOAD, it answers for paths under
 * /dev/brine-emu/ and CAN interfaces named emucan*; everything else passes
 * through to the C library.
 *
 * The emulated bench:
 * - /dev/brine-emu/i2c-N: one bus with a TMP102-style sensor at 0x48
 *   (256 registers, register 0 reads 0x19 0x00 = 25.0 °C); other addresses
 *   do not answer (ENXIO).
 * - /dev/brine-emu/spidevB.C: MOSI wired to MISO (a loopback).
 * - /dev/brine-emu/gpiochip0: 8 lines EMU0..EMU7; each odd line is wired to
 *   the even line below it, so driving line 0 is seen on line 1, with edge
 *   events and timestamps.
 * - emucan0: a CAN bus joining every socket opened on it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/can.h>
#include <linux/can/raw.h>
#include <linux/gpio.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <linux/spi/spidev.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PREFIX "/dev/brine-emu/"
#define MAX_FD 1024
#define LINES 8

enum kind { NONE, I2C, SPI, CHIP, LINEREQ, CAN };

struct emu_fd {
  enum kind kind;
  int peer;                   /* LINEREQ, CAN: the emulator's socket end */
  uint32_t offsets[LINES];    /* LINEREQ */
  uint32_t nlines;
  uint64_t flags;
  uint32_t seqno;
  uint8_t spi_mode, spi_bits;
  uint32_t spi_speed;
  struct can_filter filters[16];
  int nfilters;               /* -1: accept everything */
};

static struct emu_fd fds[MAX_FD];
static uint8_t sensor_regs[256] = {0x19, 0x00};
static int line_value[LINES];
static int line_used[LINES];
static char line_consumer[LINES][GPIO_MAX_NAME_SIZE];

#define REAL(name, ret, ...) \
  static ret (*real_##name)(__VA_ARGS__); \
  if (!real_##name) \
    real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static struct emu_fd *emu(int fd)
{
  return fd >= 0 && fd < MAX_FD && fds[fd].kind != NONE ? &fds[fd] : NULL;
}

static int open_emulated(const char *path)
{
  const char *name = path + strlen(PREFIX);
  enum kind kind = NONE;
  if (strncmp(name, "i2c-", 4) == 0)
    kind = I2C;
  else if (strncmp(name, "spidev", 6) == 0)
    kind = SPI;
  else if (strcmp(name, "gpiochip0") == 0)
    kind = CHIP;
  if (kind == NONE) {
    errno = ENOENT;
    return -1;
  }
  REAL(open, int, const char *, int, ...);
  int fd = real_open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0 || fd >= MAX_FD)
    return fd;
  memset(&fds[fd], 0, sizeof fds[fd]);
  fds[fd].kind = kind;
  fds[fd].spi_bits = 8;
  fds[fd].spi_speed = 500000;
  return fd;
}

int open(const char *path, int flags, ...)
{
  if (strncmp(path, PREFIX, strlen(PREFIX)) == 0)
    return open_emulated(path);
  va_list ap;
  va_start(ap, flags);
  mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
  va_end(ap);
  REAL(open, int, const char *, int, ...);
  return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
  va_list ap;
  va_start(ap, flags);
  mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
  va_end(ap);
  return open(path, flags, mode);
}

int close(int fd)
{
  struct emu_fd *e = emu(fd);
  if (e) {
    if (e->kind == LINEREQ)
      for (uint32_t i = 0; i < e->nlines; i++)
        line_used[e->offsets[i]] = 0;
    if (e->peer > 0) {
      REAL(close, int, int);
      real_close(e->peer);
    }
    e->kind = NONE;
  }
  REAL(close, int, int);
  return real_close(fd);
}

/* The I2C sensor: a register pointer set by the first written byte. */
static int i2c_rdwr(struct i2c_rdwr_ioctl_data *d)
{
  static uint8_t ptr;
  for (uint32_t m = 0; m < d->nmsgs; m++) {
    struct i2c_msg *msg = &d->msgs[m];
    if (msg->addr != 0x48) {
      errno = ENXIO;
      return -1;
    }
    for (uint16_t i = 0; i < msg->len; i++) {
      if (msg->flags & I2C_M_RD)
        msg->buf[i] = sensor_regs[ptr++];
      else if (i == 0)
        ptr = msg->buf[0];
      else
        sensor_regs[ptr++] = msg->buf[i];
    }
  }
  return (int)d->nmsgs;
}

static void emit_event(struct emu_fd *req, uint32_t offset, int rising)
{
  struct gpio_v2_line_event ev;
  memset(&ev, 0, sizeof ev);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ev.timestamp_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  ev.id = rising ? GPIO_V2_LINE_EVENT_RISING_EDGE
                 : GPIO_V2_LINE_EVENT_FALLING_EDGE;
  ev.offset = offset;
  ev.seqno = ++req->seqno;
  ev.line_seqno = ev.seqno;
  REAL(write, ssize_t, int, const void *, size_t);
  real_write(req->peer, &ev, sizeof ev);
}

/* Drives line to value; its odd neighbour follows, raising edge events. */
static void drive(uint32_t line, int value)
{
  line_value[line] = value;
  uint32_t wired = line ^ 1u;
  if (line % 2 || line_value[wired] == value)
    return;
  line_value[wired] = value;
  for (int fd = 0; fd < MAX_FD; fd++) {
    struct emu_fd *r = &fds[fd];
    if (r->kind != LINEREQ)
      continue;
    uint64_t want = value ? GPIO_V2_LINE_FLAG_EDGE_RISING
                          : GPIO_V2_LINE_FLAG_EDGE_FALLING;
    for (uint32_t i = 0; i < r->nlines; i++)
      if (r->offsets[i] == wired && (r->flags & want))
        emit_event(r, wired, value);
  }
}

static int line_request(struct gpio_v2_line_request *req)
{
  if (req->num_lines == 0 || req->num_lines > LINES) {
    errno = EINVAL;
    return -1;
  }
  for (uint32_t i = 0; i < req->num_lines; i++) {
    if (req->offsets[i] >= LINES) {
      errno = EINVAL;
      return -1;
    }
    if (line_used[req->offsets[i]]) {
      errno = EBUSY;
      return -1;
    }
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -1;
  struct emu_fd *r = &fds[sv[0]];
  memset(r, 0, sizeof *r);
  r->kind = LINEREQ;
  r->peer = sv[1];
  r->nlines = req->num_lines;
  r->flags = req->config.flags;
  for (uint32_t i = 0; i < req->num_lines; i++) {
    r->offsets[i] = req->offsets[i];
    line_used[req->offsets[i]] = 1;
    snprintf(line_consumer[req->offsets[i]], GPIO_MAX_NAME_SIZE, "%s",
             req->consumer);
  }
  if (req->config.num_attrs
      && req->config.attrs[0].attr.id == GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES)
    for (uint32_t i = 0; i < req->num_lines; i++)
      if (req->config.attrs[0].mask >> i & 1)
        drive(req->offsets[i], (int)(req->config.attrs[0].attr.values >> i & 1));
  req->fd = sv[0];
  return 0;
}

static int chip_ioctl(unsigned long request, void *arg)
{
  if (request == GPIO_GET_CHIPINFO_IOCTL) {
    struct gpiochip_info *info = arg;
    snprintf(info->name, sizeof info->name, "gpiochip0");
    snprintf(info->label, sizeof info->label, "brine-emu");
    info->lines = LINES;
    return 0;
  }
  if (request == GPIO_V2_GET_LINEINFO_IOCTL) {
    struct gpio_v2_line_info *info = arg;
    if (info->offset >= LINES) {
      errno = EINVAL;
      return -1;
    }
    snprintf(info->name, sizeof info->name, "EMU%u", info->offset);
    info->flags = line_used[info->offset] ? GPIO_V2_LINE_FLAG_USED : 0;
    snprintf(info->consumer, sizeof info->consumer, "%s",
             line_used[info->offset] ? line_consumer[info->offset] : "");
    return 0;
  }
  if (request == GPIO_V2_GET_LINE_IOCTL)
    return line_request(arg);
  errno = ENOTTY;
  return -1;
}

static int linereq_ioctl(struct emu_fd *r, unsigned long request, void *arg)
{
  struct gpio_v2_line_values *v = arg;
  if (request == GPIO_V2_LINE_GET_VALUES_IOCTL) {
    v->bits = 0;
    for (uint32_t i = 0; i < r->nlines; i++)
      if ((v->mask >> i & 1) && line_value[r->offsets[i]])
        v->bits |= 1ULL << i;
    return 0;
  }
  if (request == GPIO_V2_LINE_SET_VALUES_IOCTL) {
    if (!(r->flags & GPIO_V2_LINE_FLAG_OUTPUT)) {
      errno = EPERM;
      return -1;
    }
    for (uint32_t i = 0; i < r->nlines; i++)
      if (v->mask >> i & 1)
        drive(r->offsets[i], (int)(v->bits >> i & 1));
    return 0;
  }
  errno = ENOTTY;
  return -1;
}

static int spi_ioctl(struct emu_fd *e, unsigned long request, void *arg)
{
  switch (request) {
  case SPI_IOC_WR_MODE: e->spi_mode = *(uint8_t *)arg; return 0;
  case SPI_IOC_RD_MODE: *(uint8_t *)arg = e->spi_mode; return 0;
  case SPI_IOC_WR_BITS_PER_WORD: e->spi_bits = *(uint8_t *)arg; return 0;
  case SPI_IOC_RD_BITS_PER_WORD: *(uint8_t *)arg = e->spi_bits; return 0;
  case SPI_IOC_WR_MAX_SPEED_HZ: e->spi_speed = *(uint32_t *)arg; return 0;
  case SPI_IOC_RD_MAX_SPEED_HZ: *(uint32_t *)arg = e->spi_speed; return 0;
  default: break;
  }
  if (request == SPI_IOC_MESSAGE(1)) {
    struct spi_ioc_transfer *t = arg;
    memcpy((void *)(uintptr_t)t->rx_buf, (void *)(uintptr_t)t->tx_buf, t->len);
    return (int)t->len;
  }
  errno = ENOTTY;
  return -1;
}

static int can_ioctl(unsigned long request, void *arg)
{
  if (request == SIOCGIFINDEX) {
    struct ifreq *ifr = arg;
    if (strncmp(ifr->ifr_name, "emucan", 6) == 0) {
      ifr->ifr_ifindex = 700 + (ifr->ifr_name[6] - '0');
      return 0;
    }
    errno = ENODEV;
    return -1;
  }
  errno = ENOTTY;
  return -1;
}

int ioctl(int fd, unsigned long request, ...)
{
  va_list ap;
  va_start(ap, request);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  struct emu_fd *e = emu(fd);
  if (!e) {
    REAL(ioctl, int, int, unsigned long, ...);
    return real_ioctl(fd, request, arg);
  }
  switch (e->kind) {
  case I2C:
    if (request == I2C_RDWR)
      return i2c_rdwr(arg);
    if (request == I2C_TIMEOUT || request == I2C_RETRIES)
      return (unsigned long)arg <= 6000 ? 0 : (errno = EINVAL, -1);
    errno = ENOTTY;
    return -1;
  case SPI: return spi_ioctl(e, request, arg);
  case CHIP: return chip_ioctl(request, arg);
  case LINEREQ: return linereq_ioctl(e, request, arg);
  case CAN: return can_ioctl(request, arg);
  default: errno = ENOTTY; return -1;
  }
}

int socket(int domain, int type, int protocol)
{
  REAL(socket, int, int, int, int);
  if (domain != PF_CAN)
    return real_socket(domain, type, protocol);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -1;
  memset(&fds[sv[0]], 0, sizeof fds[sv[0]]);
  fds[sv[0]].kind = CAN;
  fds[sv[0]].peer = sv[1];
  fds[sv[0]].nfilters = -1;
  return sv[0];
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
  if (emu(fd) && emu(fd)->kind == CAN)
    return 0;
  REAL(bind, int, int, const struct sockaddr *, socklen_t);
  return real_bind(fd, addr, len);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
  struct emu_fd *e = emu(fd);
  if (e && e->kind == CAN && level == SOL_CAN_RAW && name == CAN_RAW_FILTER) {
    int n = (int)(len / sizeof(struct can_filter));
    if (n > 16) {
      errno = EINVAL;
      return -1;
    }
    memcpy(e->filters, val, (size_t)n * sizeof(struct can_filter));
    e->nfilters = n;
    return 0;
  }
  REAL(setsockopt, int, int, int, int, const void *, socklen_t);
  return real_setsockopt(fd, level, name, val, len);
}

static int can_accepts(struct emu_fd *e, canid_t id)
{
  if (e->nfilters < 0)
    return 1;
  for (int i = 0; i < e->nfilters; i++)
    if ((id & e->filters[i].can_mask)
        == (e->filters[i].can_id & e->filters[i].can_mask))
      return 1;
  return 0;
}

ssize_t write(int fd, const void *buf, size_t len)
{
  REAL(write, ssize_t, int, const void *, size_t);
  struct emu_fd *e = emu(fd);
  if (!e || e->kind != CAN)
    return real_write(fd, buf, len);
  if (len != sizeof(struct can_frame)) {
    errno = EINVAL;
    return -1;
  }
  const struct can_frame *f = buf;
  for (int other = 0; other < MAX_FD; other++)
    if (other != fd && fds[other].kind == CAN && can_accepts(&fds[other], f->can_id))
      real_write(fds[other].peer, buf, len);
  return (ssize_t)len;
}
