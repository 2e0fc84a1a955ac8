// SPDX-License-Identifier: MIT
// The tasks-file loader (core/tasks/tasksfile.*) on arbitrary YAML bytes. Properties: every
// error names the file and has a message and a sane position; a file without errors gives
// one position per task and each task's key is valid; the declared fields of every task
// validate their own defaults without crashing.
#include "fuzzsupport.h"

#include "tasksfile.h"

#include <QJsonObject>

using namespace taskdeck;
using namespace Qt::StringLiterals;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    fuzz::quietQtMessages();
    if (size > 64 * 1024)
        return 0;
    const QString name = u"fuzz.yml"_s;
    const TasksFileResult r = parseTasksYaml(fuzz::bytes(data, size), name, u"/tmp"_s);
    FUZZ_CHECK(r.file == name);
    for (const TasksFileError &e : r.errors) {
        FUZZ_CHECK(e.file == name);
        FUZZ_CHECK(!e.message.isEmpty());
        FUZZ_CHECK(e.line >= 0 && e.column >= 0);
        FUZZ_CHECK(e.toString().startsWith(name));
    }
    FUZZ_CHECK(r.tasks.size() == r.positions.size());
    for (qsizetype i = 0; i < r.tasks.size(); ++i) {
        const Task &task = r.tasks.at(i);
        FUZZ_CHECK(isValidTaskKey(task.key));
        if (r.ok())
            FUZZ_CHECK(r.positionOf(task.key).line == r.positions.at(i).line);
        task.toJson();
        validateArguments(task.fields, QJsonObject());
        fieldsToJsonSchema(task.fields);
        taskArgumentVariable(task.key);
    }
    return 0;
}
