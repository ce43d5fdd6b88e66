/* cpp_leak: C++ allocations through operator new and new[], inside std::string and
 * std::vector, and a static object that cleans up after itself at exit.
 *
 *   make_widget(int)      new Widget (64 bytes), 3 times, never deleted        192 B, 3 blocks
 *   Widget::Widget(int)   each Widget's std::string name (40 characters, too
 *                         long for the in-object buffer: 41 B) and its
 *                         std::vector<int> values (reserve(25): 100 B)         423 B, 6 blocks
 *   make_samples()        new int[250], never deleted                        1,000 B, 1 block
 *   make_tags()           new Tag[3]: 3 x 16 B plus the C++ ABI's 8-byte
 *                         array cookie (Tag has a destructor)                   56 B, 1 block
 *   Registry::add(int)    the static `registry` holds 50 strings in a vector;
 *                         its destructor frees them at exit: nothing live        0 B
 *
 * A site is the user's own function: std::string's and std::vector's internals (inlined
 * from the headers or in libstdc++) and operator new are allocator plumbing, like strdup.
 *
 * libstdc++ allocates its emergency exception-handling pool at start-up (GCC 12: 72,704
 * bytes in 1 block) and never frees it; only __gnu_cxx::__freeres does, which valgrind calls
 * with --run-cxx-freeres=yes. It is live at exit, so it IS part of the total below, which
 * equals valgrind's "in use at exit" with --run-cxx-freeres=no. It is the "other" line: its
 * site is a local function of libstdc++, which is stripped.
 *
 * EXPECT total bytes=74375 blocks=12
 * EXPECT site function=make_widget(int) bytes=192 blocks=3
 * EXPECT site function=Widget::Widget(int) bytes=423 blocks=6
 * EXPECT site function=make_samples() bytes=1000 blocks=1
 * EXPECT site function=make_tags() bytes=56 blocks=1
 * EXPECT other bytes=72704 blocks=1
 */
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#define SITE __attribute__((noipa))

struct Widget {
    SITE explicit Widget(int id);
    int id;
    std::string name;
    std::vector<int> values;
};

Widget::Widget(int id_) : id(id_), name(), values()
{
    char label[48];
    std::snprintf(label, sizeof label, "widget-with-a-name-too-long-for-sso-%04d", 1000 + id_);
    name = std::string(label); /* 40 characters: exactly 41 bytes, moved into name */
    values.reserve(25);
    for (int i = 0; i < 25; i++)
        values.push_back(i * id_);
}

struct Tag {
    long a, b;
    ~Tag() { a = b = 0; }
};

/* A registry that owns its strings and frees them in its destructor, which runs at exit
 * (before the exit snapshot is taken). */
struct Registry {
    std::vector<std::string> names;
    SITE void add(int i) { names.push_back("registered-name-number-" + std::to_string(i)); }
};
static Registry registry;

static Widget *volatile widgets[3];
static int *volatile samples_kept;
static Tag *volatile tags_kept;

SITE Widget *make_widget(int id)
{
    Widget *w = new Widget(id);
    widgets[id] = w;
    return w;
}

SITE int *make_samples()
{
    int *v = new int[250];
    for (int i = 0; i < 250; i++)
        v[i] = i;
    samples_kept = v;
    return v;
}

SITE Tag *make_tags()
{
    Tag *t = new Tag[3];
    tags_kept = t;
    return t;
}

int main()
{
    static_assert(sizeof(Widget) == 64, "figures in the comment assume a 64-byte Widget");
    static_assert(sizeof(Tag) == 16, "figures in the comment assume a 16-byte Tag");
    for (int i = 0; i < 3; i++)
        make_widget(i);
    make_samples();
    make_tags();
    for (int i = 0; i < 50; i++)
        registry.add(i);
    return 0;
}
