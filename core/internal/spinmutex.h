// SPDX-License-Identifier: MIT
#pragma once

#include <atomic>

#if defined(__linux__)
#  include <linux/futex.h>
#  include <sys/syscall.h>
#  include <unistd.h>
#endif

namespace taskdeck::detail {

/*!
 * A mutex for very short critical sections that several threads enter at a high rate (the
 * engine's queue and its event list).
 *
 * A contended lock first spins for about as long as a sleep and wake-up would cost, and only
 * then sleeps on a futex; unlock makes a system call only when somebody sleeps. A plain
 * mutex sleeps at once, so under contention every lock and unlock becomes a system call,
 * which on a virtual machine costs several microseconds each.
 *
 * Meets the Lockable requirements: use it with QMutexLocker, std::unique_lock and
 * std::condition_variable_any.
 */
class SpinMutex
{
public:
    SpinMutex() = default;
    SpinMutex(const SpinMutex &) = delete;
    SpinMutex &operator=(const SpinMutex &) = delete;

    void lock()
    {
        int expected = Unlocked;
        if (!m_state.compare_exchange_strong(expected, Locked, std::memory_order_acquire))
            lockContended();
    }

    bool try_lock()
    {
        int expected = Unlocked;
        return m_state.compare_exchange_strong(expected, Locked, std::memory_order_acquire);
    }

    void unlock()
    {
        if (m_state.exchange(Unlocked, std::memory_order_release) == Sleepers)
            wakeOne();
    }

    /*! One pause of a spin-wait loop (tells the CPU, and a hypervisor, that we spin). */
    static void relax()
    {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield" ::: "memory");
#endif
    }

private:
    enum : int { Unlocked = 0, Locked = 1, Sleepers = 2 };
    static constexpr int kSpins = 128;

    void lockContended()
    {
        for (int i = 0; i < kSpins; ++i) {
            relax();
            int state = m_state.load(std::memory_order_relaxed);
            if (state == Unlocked
                && m_state.compare_exchange_weak(state, Locked, std::memory_order_acquire)) {
                return;
            }
        }
        // From here the state says "somebody may sleep", so the owner's unlock wakes one.
        while (m_state.exchange(Sleepers, std::memory_order_acquire) != Unlocked)
            sleepWhileContended();
    }

    void sleepWhileContended()
    {
#if defined(__linux__)
        syscall(SYS_futex, reinterpret_cast<int *>(&m_state), FUTEX_WAIT_PRIVATE, int(Sleepers),
                nullptr, nullptr, 0);
#else
        m_state.wait(Sleepers, std::memory_order_relaxed);
#endif
    }

    void wakeOne()
    {
#if defined(__linux__)
        syscall(SYS_futex, reinterpret_cast<int *>(&m_state), FUTEX_WAKE_PRIVATE, 1, nullptr,
                nullptr, 0);
#else
        m_state.notify_one();
#endif
    }

    static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free);
    std::atomic<int> m_state{Unlocked};
};

} // namespace taskdeck::detail
