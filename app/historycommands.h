// SPDX-License-Identifier: MIT
#pragma once

#include <QString>

namespace taskdeck {

class Console;
class IRunStore;
struct CommandLine;

/*!
 * The commands that read the run history (history, show, log and export) and cancel, which
 * asks the history's shared queue to cancel a run of another process. They need no
 * engine and no tasks, only \a store (not owned, never null) and \a console. Every command
 * returns its exit code.
 */
class HistoryCommands final
{
public:
    HistoryCommands(IRunStore *store, Console *console);
    Q_DISABLE_COPY_MOVE(HistoryCommands)

    /*! Runs the History, Show, Log, Export or Cancel command of \a commandLine. */
    int execute(const CommandLine &commandLine);

    int history(const CommandLine &commandLine);
    int show(const CommandLine &commandLine);
    int log(const CommandLine &commandLine);
    int exportRun(const CommandLine &commandLine);
    /*!
     * cancel: 0 when the run was canceled in the shared queue or its worker was asked to;
     * 1 when it has finished or only its own process can cancel it (without a shared queue);
     * 2 for an unknown run or a database that did not answer.
     */
    int cancel(const CommandLine &commandLine);
    /*! history --check: the store's integrity check; 0 when sound, 1 with the problems. */
    int check();

private:
    int unknownRun(const QString &runId);

    IRunStore *m_store;
    Console *m_console;
};

} // namespace taskdeck
