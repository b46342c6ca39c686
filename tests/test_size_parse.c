/* SPDX-License-Identifier: Apache-2.0 */
/* test_size_parse.c — sizes and bandwidths from the command line, the clock, /proc readers. */
#include "base/clock.h"
#include "base/size_parse.h"
#include "base/sysinfo.h"
#include "check.h"

static uint64_t parsed(const char *text)
{
    uint64_t bytes = 0;
    CHECK_OK(size_parse(text, "--vram", &bytes));
    return bytes;
}

static void test_sizes(void)
{
    CHECK(parsed("0") == 0);
    CHECK(parsed("4096") == 4096);
    CHECK(parsed("100B") == 100);
    CHECK(parsed("512K") == 512u * 1024);
    CHECK(parsed("512M") == 512ull << 20);
    CHECK(parsed("512MiB") == 512ull << 20);
    CHECK(parsed("6G") == 6ull << 30);
    CHECK(parsed("6g") == 6ull << 30);
    CHECK(parsed("6GiB") == 6ull << 30);
    CHECK(parsed("6GB") == 6000000000ull);
    CHECK(parsed("2T") == 2ull << 40);
    CHECK(parsed("1.5G") == 3ull << 29);
    CHECK(parsed("0.5K") == 512);
    CHECK(parsed("24 GiB") == 24ull << 30);
    uint64_t bytes;
    CHECK_FAILS(size_parse("", "--vram", &bytes), CANVAS_ERR_USAGE, "--vram");
    CHECK_FAILS(size_parse("G", "--vram", &bytes), CANVAS_ERR_USAGE, "'G'");
    CHECK_FAILS(size_parse("6X", "--ram", &bytes), CANVAS_ERR_USAGE, "unknown unit 'X'");
    CHECK_FAILS(size_parse("6Gx", "--ram", &bytes), CANVAS_ERR_USAGE, "--ram");
    CHECK_FAILS(size_parse("-1G", "--ram", &bytes), CANVAS_ERR_USAGE, "--ram");
    CHECK_FAILS(size_parse("1.2.3G", "--ram", &bytes), CANVAS_ERR_USAGE, "--ram");
    CHECK_FAILS(size_parse("99999999T", "--ram", &bytes), CANVAS_ERR_USAGE, "64-bit");
    CHECK(bytes == 0);
}

static void test_rates(void)
{
    double rate = 0;
    CHECK_OK(size_parse_rate("16G/s", "--link-bandwidth", &rate));
    CHECK(rate == 16.0 * 1024 * 1024 * 1024);
    CHECK_OK(size_parse_rate("25GB/s", "--link-bandwidth", &rate));
    CHECK(rate == 25e9);
    CHECK_OK(size_parse_rate("100M", "--link-bandwidth", &rate));
    CHECK(rate == 100.0 * 1024 * 1024);
    CHECK_FAILS(size_parse_rate("0G/s", "--link-bandwidth", &rate), CANVAS_ERR_USAGE, "more than 0");
    /* 1 byte per second would make a run of days: refused, and the floor itself is accepted */
    CHECK_FAILS(size_parse_rate("1/s", "--link-bandwidth", &rate), CANVAS_ERR_USAGE, "at least 1M/s");
    CHECK_FAILS(size_parse_rate("1023K/s", "--link-bandwidth", &rate), CANVAS_ERR_USAGE, "at least 1M/s");
    CHECK_OK(size_parse_rate("1M/s", "--link-bandwidth", &rate));
    CHECK_NEAR(rate, 1048576.0, 0.5);
    CHECK_FAILS(size_parse_rate("/s", "--link-bandwidth", &rate), CANVAS_ERR_USAGE, "--link-bandwidth");
    CHECK_FAILS(size_parse_rate("16G/h", "--link-bandwidth", &rate), CANVAS_ERR_USAGE, "unknown unit");
}

static void test_format(void)
{
    char buf[32];
    CHECK(!strcmp(size_format(512, buf, sizeof buf), "512 B"));
    CHECK(!strcmp(size_format(1536, buf, sizeof buf), "1.50 KiB"));
    CHECK(!strcmp(size_format(6ull << 30, buf, sizeof buf), "6.00 GiB"));
}

static void test_clock(void)
{
    uint64_t a = clock_ns();
    clock_sleep(0.02);
    uint64_t b = clock_ns();
    CHECK(b - a >= 20000000u);
    CHECK(b - a < 2000000000u);
    double s = clock_seconds();
    CHECK(s > 0);
    clock_sleep(-1); /* returns at once */
}

static void test_sysinfo(void)
{
    uint64_t available = 0, total = 0, rss = 0;
    CHECK_OK(sysinfo_mem_available(&available));
    CHECK_OK(sysinfo_mem_total(&total));
    CHECK_OK(sysinfo_rss(&rss));
    CHECK(total > 0 && available > 0 && available <= total);
    /* This process touches at least some pages and fewer than the machine has. */
    CHECK(rss > 64 * 1024 && rss < total);
    CHECK(sysinfo_online_cpus() >= 1);
}

int main(void)
{
    RUN(test_sizes);
    RUN(test_rates);
    RUN(test_format);
    RUN(test_clock);
    RUN(test_sysinfo);
    return check_summary();
}
